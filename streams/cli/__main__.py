from typostream.streams.cli import main

main()
