"""The web page, one module per tab: layout, wiring and display formatting over `mnist_gan.service.Service`.

app.py assembles the tabs into the page. Each tab is a class whose public methods are its API endpoints (plain
values in, files and JSON out) and whose `build()` lays out its components and wires their events.
"""
