from django.urls import path

from catalog import apis

api_urlpatterns = [
    path("events", apis.EventsApi.as_view(), name="events"),
    path("products", apis.ProductsApi.as_view(), name="products"),
    path("products/<path:sku>", apis.ProductDeleteApi.as_view(), name="product-delete"),
    path("shoppers/<path:shopper_id>", apis.ShopperEraseApi.as_view(), name="shopper-erase"),
]
