"""URLs of the demo storefront (its own URLConf: it runs as a separate site)."""

from django.urls import path

from recsite.storefront import views

handler404 = "recsite.storefront.views.not_found"

urlpatterns = [
    path("", views.home, name="home"),
    path("category/<int:category_id>/", views.category, name="category"),
    path("product/<path:sku>", views.product, name="product"),
    path("cart/", views.cart, name="cart"),
    path("events/", views.events, name="events"),
    path("img/<path:sku>.svg", views.poster, name="poster"),
]
