"""qmqp-report --html: one self-contained page of charts, written by our own code.

view.py reads what the charts need from a result document; svg.py draws (scales, axes,
lines, all text escaped); charts.py makes the three charts; page.py puts them, with each
run's config, summary and checks, into one HTML file that makes no request of its own.
"""
