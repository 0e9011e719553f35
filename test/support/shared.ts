// Where the tests find third-party data: `shared/` beside the checkout (as CI has it, read-only),
// never a copy inside the repository (the draft's samples and schema, other servers' bodies, the
// early draft). A missing folder stops the run with one line naming it.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

/** `shared/` beside the checkout: this file sits at `test/support/` of the repository. */
export const SHARED = path.resolve(import.meta.dirname, "../../../shared");

/** A folder (or file) of `shared/` the tests need is not there. */
export class SharedFolderMissing extends Error {
  constructor(relative: string, what: string, problem = "not found") {
    super(`../shared/${relative} ${problem}: the tests read ${what} from shared/ beside the checkout`);
  }
}

/**
 * Runs `read` in a global setup; a missing folder ends the run with its one line on stderr and
 * exit code 1, rather than a startup error with a stack trace.
 */
export function stopIfMissing(read: () => void): void {
  try {
    read();
  } catch (error) {
    if (!(error instanceof SharedFolderMissing)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

/** Vitest global setup of the node project: its tests read the draft's schema and samples. */
export function setup(): void {
  stopIfMissing(specXml);
}

/** The absolute path of `relative` inside `shared/`, checked to exist. */
export function sharedFolder(relative: string, what: string): string {
  const folder = path.join(SHARED, relative);
  if (!existsSync(folder)) throw new SharedFolderMissing(relative, what);
  return folder;
}

/** Every file of `folder` whose name matches, by name, read as UTF-8 exactly as stored (BOM and all). */
export function readFiles(folder: string, name: RegExp): Record<string, string> {
  return Object.fromEntries(
    readdirSync(folder)
      .filter((file) => name.test(file))
      .sort()
      .map((file) => [file, readFileSync(path.join(folder, file), "utf8")]),
  );
}

/** The draft's XML samples and RELAX NG schema (draft-bitfire-webdav-push-00, `xml/`). */
export const specXml = () => sharedFolder("spec/xml", "the draft's XML samples and RELAX NG schema");
/** Other WebDAV-Push servers' push-register bodies. */
export const interopServers = () => sharedFolder("interop/servers", "other servers' push-register bodies");
/** The early draft the project was created from (`seeds/002_*.txt`), with its sample requests. */
export function seed002(): string {
  const folder = sharedFolder("seeds", "the early draft's sample requests (002_*.txt)");
  const texts = Object.values(readFiles(folder, /^002_.*\.txt$/));
  if (texts.length !== 1) {
    throw new SharedFolderMissing("seeds/002_*.txt", "the early draft's sample requests", texts.length === 0 ? "not found" : "matches more than one file");
  }
  return texts[0];
}
