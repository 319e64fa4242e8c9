"""The command lines, one thin module per command (``score``, ``extract``, ``train``, ``evaluate``,
``serve``) with ``main(argv, prog) -> int``; ``common`` declares the flags they share and maps
them onto configuration once. Parsing imports nothing heavy: ``--help`` never loads TensorFlow."""
