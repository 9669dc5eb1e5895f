"""The scorer process: `python -m kiln.ml.serving.scorer_main --port P --model DIR`.

Loads one pyfunc model and answers `GET /ping` and `POST /invocations` on 127.0.0.1 with
MLflow's own scoring function (`mlflow.pyfunc.scoring_server.invocations`: the same request
formats, schema enforcement and error bodies as `mlflow models serve`), over a bare asyncio
HTTP/1.1 loop instead of uvicorn + FastAPI: only Kiln talks to it, and the framework was most of
the per-request cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from typing import Any

from kiln.ml.serving.http1 import read_request, write_response

__all__ = ["main"]


def _load(model_dir: str) -> tuple[Any, Any, Any]:
    import mlflow.pyfunc.scoring_server

    from kiln.ml.serving.online_lookup import LookupModel, wrap_with_lookups

    scoring_server: Any = mlflow.pyfunc.scoring_server
    model = wrap_with_lookups(scoring_server.load_model_with_mlflow_config(model_dir), model_dir)
    os.environ["MLFLOW_IS_IN_SERVING_ENVIRONMENT"] = "true"
    if isinstance(model, LookupModel):
        # The request holds keys, not the model's inputs: the lookup checks those itself.
        return scoring_server, model, None
    return scoring_server, model, model.metadata.get_input_schema()


def _score(scoring: Any, model: Any, schema: Any, body: bytes, content_type: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        result = scoring.invocations(body.decode("utf-8"), content_type, model, schema)
    except MlflowException as e:
        error: Any = e
        return error.get_http_status_code(), error.serialize_as_json().encode(), "application/json"
    except UnicodeDecodeError:
        message = {"error_code": "BAD_REQUEST", "message": "The body is not UTF-8."}
        return 400, json.dumps(message).encode(), "application/json"
    response = result.response
    data = response.encode() if isinstance(response, str) else bytes(response)
    return result.status, data, result.mimetype


async def _serve(port: int, model_dir: str) -> None:
    scoring, model, schema = _load(model_dir)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await read_request(reader)
                except (ValueError, asyncio.IncompleteReadError):
                    break
                if request is None:
                    break
                method, path, headers, body = request
                if path in ("/ping", "/health"):
                    write_response(writer, 200, b"\n", "application/json")
                elif path == "/invocations" and method == "POST":
                    content_type = headers.get("content-type", "application/json")
                    status, data, mimetype = _score(scoring, model, schema, body, content_type)
                    write_response(writer, status, data, mimetype)
                else:
                    write_response(writer, 404, b"Not Found", "text/plain")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=256)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Parse the command line and serve until terminated."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.model))


if __name__ == "__main__":
    main()
