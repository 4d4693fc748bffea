// Validates docs/openapi.yaml (OpenAPI 3.1, @apidevtools/swagger-parser) and docs/asyncapi.yaml
// (AsyncAPI 3.0, @asyncapi/parser): schema, references and the spec's own rules. Exits non-zero
// naming each problem. Run by tests/ops/specs.sh after `npm ci` from the committed lockfile.
"use strict";
const fs = require("fs");
const path = require("path");
const SwaggerParser = require("@apidevtools/swagger-parser");
const { Parser } = require("@asyncapi/parser");

const docs = process.argv[2];
if (!docs) {
  console.error("usage: node validate_specs.js DOCS_DIR");
  process.exit(2);
}

async function openapi(file) {
  const api = await SwaggerParser.validate(file);
  if (!String(api.openapi).startsWith("3.1")) throw new Error(`openapi is ${api.openapi}, want 3.1.x`);
  const ops = Object.values(api.paths).reduce((n, p) => n + Object.keys(p).length, 0);
  console.log(`${file}: valid OpenAPI ${api.openapi}, ${Object.keys(api.paths).length} paths, ${ops} operations`);
}

async function asyncapi(file) {
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(fs.readFileSync(file, "utf8"), { source: file });
  // Severity 0 is an error; 1 (warning) and below are printed but do not fail.
  for (const d of diagnostics) console.log(`${file}: [${d.severity}] ${d.code}: ${d.message} at ${d.path.join(".")}`);
  const errors = diagnostics.filter((d) => d.severity === 0);
  if (!document || errors.length) throw new Error(`${errors.length} error(s)`);
  const version = document.version();
  if (!version.startsWith("3.0")) throw new Error(`asyncapi is ${version}, want 3.0.x`);
  console.log(`${file}: valid AsyncAPI ${version}, ${document.channels().length} channels, ` +
              `${document.operations().length} operations, ${document.messages().length} messages`);
}

(async () => {
  let failed = 0;
  for (const [name, check] of [["openapi.yaml", openapi], ["asyncapi.yaml", asyncapi]]) {
    try {
      await check(path.join(docs, name));
    } catch (e) {
      failed++;
      console.error(`FAIL ${name}: ${e.message}`);
      if (e.details) console.error(JSON.stringify(e.details, null, 1).slice(0, 4000));
    }
  }
  process.exit(failed ? 1 : 0);
})();
