// Validates SARIF files against the SARIF 2.1.0 JSON schema (the OASIS schema as published on
// schemastore, shipped in @microsoft/jest-sarif), with Ajv in its draft-04 mode: prints "valid" or
// each error with its JSON pointer, exit 0 when every file is valid, 1 otherwise.
// Usage: node validate.mjs FILE...
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import Ajv from "ajv-draft-04";
import addFormats from "ajv-formats";

const require = createRequire(import.meta.url);
const schemaPath = require.resolve("@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json");
const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
// unicodeRegExp off: the schema's "language" pattern has a stray "]", valid only without the u flag
const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
addFormats(ajv);
const validate = ajv.compile(schema);
let failed = false;
for (const file of process.argv.slice(2)) {
  const log = JSON.parse(readFileSync(file, "utf8"));
  if (validate(log)) {
    console.log(`${file}: valid`);
  } else {
    failed = true;
    for (const e of validate.errors) console.log(`${file}: ${e.instancePath || "/"} ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
