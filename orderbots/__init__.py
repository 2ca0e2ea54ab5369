"""orderbots: order-intake bots that key customer orders into ERP and WMS screens exactly once."""

__version__ = "0.1.0"
