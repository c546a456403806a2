"""The demo storefront: a small shop on its own origin that embeds the recsite widget.

It is what a shop's developer builds, kept deliberately plain: server-rendered pages
over the demo shop's catalog, a cart in the browser's storage, and the widget script
loaded from the recsite API origin under a strict Content-Security-Policy. ``make run``
serves it on port 8001 (``recsite.storefront.wsgi``, settings in
``recsite.storefront.settings``).
"""
