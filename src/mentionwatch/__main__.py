"""`python -m mentionwatch`, and the `mentionwatch` program ([project.scripts] runs `run`)."""

import gc
import sys


def run() -> None:
    """The CLI as a process of its own, with the cyclic garbage collector kept out of its
    start-up and exit. Importing typer and a command's modules makes tens of thousands of
    objects that live as long as the process, and no garbage: each collection walked them
    again (~5 ms of feed's start-up), and the interpreter walks everything still alive once
    more at exit (~13 ms). So the collector waits until the command starts (`app._main`
    turns it on, with what start-up made frozen: never walked again), and what is alive at
    the end is frozen too; the operating system takes the memory back at once. Nothing may
    count on the collector to release a resource at exit: main() closes the database, and
    files are closed by the blocks that opened them."""
    gc.disable()
    try:
        try:
            from mentionwatch.cli import main
        except KeyboardInterrupt:  # Ctrl-C while typer and click load, before main() runs
            from mentionwatch.errors import EXIT_INTERRUPTED, INTERRUPTED

            print(INTERRUPTED, file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    run()
