"""Start the chat UI: ``python app.py [--index DIR] [--host 127.0.0.1] [--port 7860] [--auth USER:PASSWORD]``.

The same as ``assistant serve``: on first start with an empty index it indexes ``seeds/``.
Settings also come from the environment (ASSISTANT_INDEX, ASSISTANT_EMBEDDER, ASSISTANT_AUTH, ASSISTANT_LLM_*).
"""

import sys

from assistant.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
