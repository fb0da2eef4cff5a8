"""``quillmate serve``: an OpenAI-compatible HTTP endpoint for chat clients, editors and scripts.

Importing this package imports Starlette (not uvicorn, torch or openai)::

    from assistant.server import create_app, ServerThread

    app = create_app(serve=["local"])
    with ServerThread(app) as server:   # uvicorn in a background thread on 127.0.0.1
        print(server.url)               # e.g. http://127.0.0.1:8000/v1
"""

from assistant.server.app import ServeState, create_app
from assistant.server.runner import ServerThread, free_port
from assistant.server.schemas import Limits

__all__ = ["Limits", "ServeState", "ServerThread", "create_app", "free_port"]
