"""The reference: a bare aiohttp JSON endpoint, the ceiling a Python service on this
stack can reach. One process, access log off, the same request and response shapes as
``POST /v1/decide``: decode the body with orjson, answer event_id + a 3-offer ranking +
model_version, encoded with orjson.

    .venv/bin/python bench/reference.py --port 8090
"""

from __future__ import annotations

import argparse
import uuid

import orjson
from aiohttp import web


async def decide(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    offers = body.get("offers") or []
    probability = 1.0 / len(offers) if offers else 0.0
    answer = {
        "event_id": body.get("event_id") or uuid.uuid4().hex,
        "ranking": [{"offer_id": offer["id"], "probability": probability} for offer in offers[:3]],
        "model_version": "0.0",
    }
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/decide", decide)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (pip install uvloop)")
    args = parser.parse_args()
    if args.uvloop:
        import asyncio

        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None,
                print=lambda _: print(f"reference listening on http://{args.host}:{args.port}", flush=True))


if __name__ == "__main__":
    main()
