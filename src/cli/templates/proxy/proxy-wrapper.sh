#!/bin/sh
# The exec wrapper that puts a Runtime API proxy in front of a managed runtime (nodejs*, python*, java*...).
# Lambda runs it with the runtime's command line when the function sets AWS_LAMBDA_EXEC_WRAPPER to its path
# (/opt/proxy-wrapper.sh, from the proxy's layer). It points the runtime at the proxy, and hands over.
#
# provided.* runtimes ignore AWS_LAMBDA_EXEC_WRAPPER: there, set MICRO_LAMBDA_RUNTIME_API=127.0.0.1:9009 instead
# (a micro-lambda bootstrap reads it). The proxy extension itself is not wrapped: it keeps Lambda's address.
export AWS_LAMBDA_RUNTIME_API="127.0.0.1:${MICRO_LAMBDA_PROXY_PORT:-9009}"
exec "$@"
