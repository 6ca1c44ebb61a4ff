// Connects with node-postgres (`pg`: its own protocol and SCRAM code, unlike libpq)
// with the driver's default settings, and reports.
//
// usage: node node_probe.js   (NODE_PATH must lead to pg; the harness sets it)
// node-postgres reads PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE itself. It
// uses TLS only when asked, so with PGSSLROOTCERT set it asks, verifying the server's
// certificate against that file (node's default), as an application would: that is
// node-postgres's way of saying sslmode=require.
// On success prints "connected as <user> ssl=<true|false> answer=<n>"; on failure
// "refused sqlstate=<SQLSTATE> message=<server message>" and exits 1.

'use strict';

const fs = require('fs');
const { Client } = require('pg');

function options() {
  const ca = process.env.PGSSLROOTCERT;
  return { connectionTimeoutMillis: 20000, ssl: ca ? { ca: fs.readFileSync(ca) } : false };
}

async function main() {
  const client = new Client(options());
  try {
    await client.connect();
  } catch (e) {
    if (!e.code) throw e;  // not the server's refusal: a bug, or no connection at all
    console.log(`refused sqlstate=${e.code} message=${e.message}`);
    process.exitCode = 1;
    return;
  }
  try {
    const { rows } = await client.query(
      'SELECT current_user AS who, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl, $1::int * 7 AS answer',
      [6]);
    console.log(`connected as ${rows[0].who} ssl=${rows[0].ssl} answer=${rows[0].answer}`);
  } finally {
    await client.end();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 2;
});
