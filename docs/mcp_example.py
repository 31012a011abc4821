"""What an agent does with mnist-gan over MCP, as a script: draw a digit, ask the discriminator about it, then find
it in the generator's latent space. Only the official `mcp` client (requirements.txt pins it).

    python app.py                                    # the app; its MCP server is on by default
    python docs/mcp_example.py                       # against http://127.0.0.1:7860/
    python docs/mcp_example.py https://you-mnist-gan.hf.space/ --out pictures/
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from pathlib import Path

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def conversation(url: str, out: Path | None) -> None:
    async with streamable_http_client(url.rstrip("/") + "/gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            names = [tool.name for tool in (await session.list_tools()).tools]
            print(f"{len(names)} tools: {', '.join(names)}")

            def tool(name: str) -> str:  # on a Space every name carries the Space's: mnist_gan_generate
                return next(n for n in names if n == name or n.endswith(f"_{name}"))

            async def ask(name: str, arguments: dict):
                result = await session.call_tool(tool(name), arguments)
                if result.isError:
                    raise SystemExit(f"{name}: {result.content[0].text}")
                text = [c.text for c in result.content if c.type == "text"]
                pictures = [(c.mimeType, base64.b64decode(c.data)) for c in result.content if c.type == "image"]
                return (json.loads(text[0]) if text else None), pictures

            # 1. "Draw me a 3": the class-conditional model, one digit
            _, [(_, drawn)] = await ask("generate", {"model": "mlp-cond", "seed": 7, "n": 1, "digit": "3"})
            print(f"generate: a {len(drawn):,}-byte PNG of a 3")
            picture = "data:image/png;base64," + base64.b64encode(drawn).decode()  # an image goes in as a data URL

            # 2. "Does it fool the discriminator?"
            verdict, _ = await ask("discriminate", {"model": "mlp-cond", "image": picture, "digit": "3"})
            print(f"discriminate: D's score {verdict['score']:.3f} ({verdict['score_is']}), it says "
                  f"{'real' if verdict['says_real'] else 'generated'}; above {verdict['real_below']:.0%} of held-out "
                  f"real digits and {verdict['samples_below']:.0%} of the model's own samples")

            # 3. "Where is it in latent space?"
            found, pictures = await ask("invert", {"model": "mlp-cond", "image": picture, "restarts": 4})
            print(f"invert: found as a {found['digit']}, error {found['error']:.3f} (RMS, pixels 0-1), after "
                  f"{found['restarts']} restarts in {found['seconds']:.1f} s; |z| = "
                  f"{sum(v * v for v in found['z']) ** 0.5:.1f}")

            card = await session.read_resource("mnist-gan://models/mlp-cond")  # a resource: the model's card
            print("resource mnist-gan://models/mlp-cond:", card.contents[0].text.splitlines()[2][:100], "...")
            if out:
                out.mkdir(parents=True, exist_ok=True)
                (out / "drawn.png").write_bytes(drawn)
                for (kind, data), name in zip(pictures, ("reconstruction", "path", "nearest")):
                    (out / f"{name}.{kind.split('/')[1]}").write_bytes(data)
                print(f"pictures in {out}/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:7860/", help="the app (or Space) URL")
    parser.add_argument("--out", type=Path, help="a folder for the pictures")
    args = parser.parse_args()
    asyncio.run(conversation(args.url, args.out))


if __name__ == "__main__":
    main()
