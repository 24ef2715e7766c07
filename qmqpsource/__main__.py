from qmqpsource.cli.source import main

main()
