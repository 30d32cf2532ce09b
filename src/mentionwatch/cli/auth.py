"""Authorizing mentionwatch to act as you on platforms that need a user token: auth."""

from typing import Annotated

import typer

from mentionwatch.cli.app import Choice, app, fail, load_config, open_store, say


def oauth_sources(ctx: object = None) -> list[str]:
    from mentionwatch.sources import registry

    return [name for name, cls in registry().items() if cls.oauth is not None]


@app.command()
def auth(
    source: Annotated[
        str,
        typer.Argument(
            click_type=Choice(oauth_sources, "source"),
            metavar="SOURCE",
            help="The platform to authorize.",
        ),
    ],
    port: Annotated[
        int,
        typer.Option(
            "--port",
            metavar="N",
            min=0,
            max=65535,
            help="Loopback port for the browser's answer (0: any free one).",
        ),
    ] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the address instead of opening it.")
    ] = False,
    timeout: Annotated[
        str, typer.Option("--timeout", metavar="WHEN", help="How long to wait for the browser.")
    ] = "5m",
    forget: Annotated[
        bool, typer.Option("--forget", help="Delete the stored tokens of SOURCE.")
    ] = False,
) -> None:
    """Let mentionwatch act as you on SOURCE (OAuth in your browser).

    Opens the platform's consent page; once you allow access, the browser comes back to
    mentionwatch on 127.0.0.1 and the token is kept in the database (never printed) and
    renewed automatically. On a machine without a browser: --no-browser, open the printed
    address elsewhere, and forward the port (ssh -L N:127.0.0.1:N) with --port N, or paste
    the address the browser ends on into the waiting command. Platforms that redirect only
    to a registered https address (Threads) need sources.SOURCE.redirect_uri, and the
    pasted address.

    \b
    Examples:
      mentionwatch auth youtube
      mentionwatch auth googleplay --no-browser --port 8977
      mentionwatch auth threads --no-browser
      mentionwatch auth youtube --forget
    """
    from mentionwatch import oauth
    from mentionwatch.models import parse_duration

    cfg = load_config(required=True)
    store = open_store(cfg, create=True)
    if forget:
        had = oauth.forget(store, source)
        say(f"{source}: stored tokens deleted" if had else f"{source}: no stored tokens")
        return
    try:
        seconds = parse_duration(timeout)
    except ValueError as exc:
        fail(f"--timeout: {exc}")
    say(
        oauth.authorize(
            cfg, store, source, port=port, open_browser=not no_browser, timeout=seconds, say=say
        )
    )
