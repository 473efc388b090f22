"""``python -m bat.run.child``: the isolated featurizing process (see ``bat.run.isolation``).

A module of its own so that the classes it sends back pickle under their real module name, not __main__.
"""

from bat.run.isolation import child_main

if __name__ == "__main__":
    child_main()
