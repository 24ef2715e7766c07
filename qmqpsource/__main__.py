from qmqpsource.cli import main

main()
