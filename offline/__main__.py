"""`python -m offline` (what `make local` runs): the local stack, see offline/local_stack.py.

Kept tiny on purpose: each Lambda worker process re-imports the main module when it starts, and
only this guard keeps the stack's own imports (moto, servers) out of them.
"""

if __name__ == "__main__":
    import sys

    from offline.local_stack import main

    sys.exit(main())
