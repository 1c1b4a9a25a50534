/* Web Worker of the contact form: solves the gateway's proof-of-work challenge (challenge.py)
 * off the page's main thread, while the person types.
 *
 * Receives {desafio, dificuldade}; answers {solucao, hashes, ms}: the first counter n for which
 * SHA-256("<desafio>:<n>") starts with `dificuldade` zero bits. SHA-256 is written out here
 * because crypto.subtle exists only in secure contexts (many intranet gateways are plain HTTP)
 * and is asynchronous per hash, far too slow for this loop.
 */
"use strict";

function primes(count) {
  var found = [];
  for (var candidate = 2; found.length < count; candidate++) {
    if (found.every(function (p) { return candidate % p; })) { found.push(candidate); }
  }
  return found;
}

// SHA-256's constants are the fractional parts of the square and cube roots of the first primes.
function fractionBits(value) { return ((value - Math.floor(value)) * 4294967296) >>> 0; }
var FIRST_PRIMES = primes(64);
var K = new Uint32Array(FIRST_PRIMES.map(function (p) { return fractionBits(Math.cbrt(p)); }));
var H0 = new Uint32Array(FIRST_PRIMES.slice(0, 8).map(function (p) { return fractionBits(Math.sqrt(p)); }));
var W = new Uint32Array(64);

function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }

/* The first 32 bits of SHA-256 of an ASCII string (the challenge's difficulty is at most 28 bits). */
function sha256FirstWord(text) {
  var length = text.length;
  var blocks = ((length + 8) >> 6) + 1;
  var words = new Uint32Array(blocks * 16);
  for (var i = 0; i < length; i++) { words[i >> 2] |= text.charCodeAt(i) << (24 - (i % 4) * 8); }
  words[length >> 2] |= 0x80 << (24 - (length % 4) * 8);
  words[blocks * 16 - 1] = length * 8;
  var h = new Uint32Array(H0);
  for (var block = 0; block < blocks; block++) {
    for (var t = 0; t < 64; t++) {
      if (t < 16) {
        W[t] = words[block * 16 + t];
      } else {
        var s0 = rotr(W[t - 15], 7) ^ rotr(W[t - 15], 18) ^ (W[t - 15] >>> 3);
        var s1 = rotr(W[t - 2], 17) ^ rotr(W[t - 2], 19) ^ (W[t - 2] >>> 10);
        W[t] = (W[t - 16] + s0 + W[t - 7] + s1) >>> 0;
      }
    }
    var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (t = 0; t < 64; t++) {
      var t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + W[t]) >>> 0;
      var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  return h[0];
}

function solve(challenge, difficulty) {
  var limit = difficulty >= 32 ? 0 : Math.pow(2, 32 - difficulty);
  var prefix = challenge + ":";
  for (var counter = 0; ; counter++) {
    if (sha256FirstWord(prefix + counter) < limit) { return counter; }
  }
}

self.onmessage = function (event) {
  var started = Date.now();
  var solution = solve(event.data.desafio, event.data.dificuldade);
  self.postMessage({desafio: event.data.desafio, solucao: String(solution), hashes: solution + 1,
    ms: Date.now() - started});
};
