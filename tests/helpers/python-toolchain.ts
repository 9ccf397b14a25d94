import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The Debian packages the Python client test needs; .ci/run installs them on a fresh machine. */
export const PYTHON_PACKAGES = ["protobuf-compiler", "protobuf-compiler-grpc", "python3-grpcio", "python3-protobuf"];

export interface PythonToolchain {
  /** A python3 that imports grpc and google.protobuf (Debian's, when a pyenv or venv python3 has neither). */
  python: string;
  protocVersion: string;
}

/**
 * Finds what the README's Python recipe needs: protoc ≥ 3.15 (proto3 `optional` without a flag),
 * grpc_python_plugin and a python3 with grpcio and protobuf. Returns the toolchain, or the reason
 * it is not there (for a printed skip). Installs nothing: that is .ci/run's job.
 */
export async function findPythonToolchain(): Promise<PythonToolchain | { missing: string }> {
  const missing: string[] = [];
  const version = await run("protoc", ["--version"]).then(
    (r) => r.stdout.trim().replace(/^libprotoc\s+/, ""),
    () => undefined,
  );
  if (!version) missing.push("protoc");
  else if (!atLeast(version, [3, 15])) missing.push(`protoc ≥ 3.15 (found ${version})`);
  if (
    !(await run("sh", ["-c", "command -v grpc_python_plugin"]).then(
      () => true,
      () => false,
    ))
  )
    missing.push("grpc_python_plugin");
  const candidates = [process.env.TETHER_PYTHON, "python3", "/usr/bin/python3"].filter((p): p is string => !!p);
  let python: string | undefined;
  for (const p of candidates) {
    if (
      await run(p, ["-c", "import grpc, google.protobuf"]).then(
        () => true,
        () => false,
      )
    ) {
      python = p;
      break;
    }
  }
  if (!python) missing.push(`a python3 with grpcio and protobuf (tried ${candidates.join(", ")})`);
  if (missing.length > 0 || !python || !version) return { missing: `${missing.join(", ")} missing: apt-get install -y ${PYTHON_PACKAGES.join(" ")}` };
  return { python, protocVersion: version };
}

/** "3.21.12" ≥ [3, 15]; protoc 22+ numbers itself "22.0" (its 3.x line ended at 3.21). */
function atLeast(version: string, min: [number, number]): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  if (major >= 22) return true;
  return major > min[0] || (major === min[0] && minor >= min[1]);
}
