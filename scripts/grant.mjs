#!/usr/bin/env node
// Mints a client grant as a tenant would: `npm run grant -- <tenant id> <grant secret> <topic>… [--sub alice] [--ttl 3600]`.
// Prints the JWT (HS256; iss = tenant id, sub, topics, exp).
import { SignJWT } from "jose";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args.splice(i, 2)[1];
};
const sub = option("sub", "demo-user");
const ttl = Number(option("ttl", "3600"));
const [tenantId, secret, ...topics] = args;
if (!tenantId || !secret || topics.length === 0) {
  console.error("usage: npm run grant -- <tenant id> <grant secret> <topic>… [--sub USER] [--ttl SECONDS]");
  process.exit(2);
}
const jwt = await new SignJWT({ topics })
  .setProtectedHeader({ alg: "HS256" })
  .setIssuer(tenantId)
  .setSubject(sub)
  .setIssuedAt()
  .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
  .sign(new TextEncoder().encode(secret));
console.log(jwt);
