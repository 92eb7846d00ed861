"""The programs: each module's ``main(argv)`` is one command (the root scripts and the ``mszoo-*`` console
commands run the same function). The library (config, models, data, engine, deploy) imports none of them."""
