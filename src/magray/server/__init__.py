"""The HTTP server: MAGRAY's services over a versioned JSON API (``magray serve``).

``create_app`` builds the FastAPI application on one :class:`~magray.runtime.Runtime` per
tenant; nothing here wires services by hand. FastAPI and uvicorn are imported only by this
package (``pip install 'magray[server]'``).
"""
