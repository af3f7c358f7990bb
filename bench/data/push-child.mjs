// The push bench/data/run.mjs kills with SIGKILL half-way, then runs again: argv[2] is a
// JSON of pushDb's and pushObjects' options.
import { pushDb, pushObjects } from './lib.mjs';

const o = JSON.parse(process.argv[2]);
const db = await pushDb(o);
const files = await pushObjects(o);
process.stdout.write(
  `${JSON.stringify({ db: { outcome: db.outcome, mismatches: db.mismatches, rows: db.rows, dumpReused: db.dumpReused, uploadedBytes: db.uploadedBytes }, files })}\n`,
);
