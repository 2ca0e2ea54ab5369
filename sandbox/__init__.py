"""A self-contained demo ERP, WMS and customer portal, legacy style, for the demo and the tests."""
