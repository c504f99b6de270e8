// One-time init: everything before lambda() runs once per sandbox (the cold start) and is reused by every invocation.
import { lambda } from "micro-lambda";

// Expensive setup belongs here, not in the handler: parse configuration, build lookup tables, create clients.
const startedAt = new Date().toISOString();
const primes = sieve(100_000);
let served = 0;

lambda(async (event: { n?: number }) => {
  served++;
  const n = event.n ?? 0;
  return { n, isPrime: primes.has(n), primesKnown: primes.size, served, sandboxStartedAt: startedAt };
});

function sieve(limit: number): Set<number> {
  const composite = new Uint8Array(limit + 1);
  const found = new Set<number>();
  for (let i = 2; i <= limit; i++) {
    if (composite[i]) continue;
    found.add(i);
    for (let j = i * i; j <= limit; j += i) composite[j] = 1;
  }
  return found;
}
