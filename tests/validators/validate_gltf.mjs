// Validates GLB files with the Khronos glTF validator and prints one JSON line per file:
// {"path", "errors", "warnings", "messages": [first issues]}. Exit code 0 unless a file is unreadable.
import { readFile } from "node:fs/promises";
import validator from "gltf-validator";

for (const path of process.argv.slice(2)) {
  const data = new Uint8Array(await readFile(path));
  const report = await validator.validateBytes(data, { maxIssues: 50 });
  const issues = report.issues;
  console.log(
    JSON.stringify({
      path,
      errors: issues.numErrors,
      warnings: issues.numWarnings,
      messages: issues.messages
        .filter((m) => m.severity <= 1)
        .slice(0, 10)
        .map((m) => `${m.severity === 0 ? "ERROR" : "WARNING"} ${m.code} ${m.pointer ?? ""}: ${m.message}`),
    }),
  );
}
