// Parse and validate docs/asyncapi.yaml with the official AsyncAPI parser (npm
// @asyncapi/parser), resolving the schema files it references. Exit 1 on any error.
// Usage: node tools/asyncapi/check.mjs docs/asyncapi.yaml   (run by `make contract`)
import { Parser, fromFile } from '@asyncapi/parser';

const file = process.argv[2] ?? 'docs/asyncapi.yaml';
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, file).parse();
const names = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  const where = d.path && d.path.length ? d.path.join('.') : '(document)';
  console.log(`${file}: ${names[d.severity] ?? d.severity}: ${where}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length > 0) {
  console.error(`${file}: ${errors.length} error(s); the AsyncAPI document is not valid`);
  process.exit(1);
}
const channels = document.channels().all().map((c) => c.address());
const messages = document.messages().all().length;
console.log(`${file}: valid AsyncAPI ${document.version()}: ${channels.length} channels, ${messages} messages`);
for (const c of channels) console.log(`  ${c}`);
