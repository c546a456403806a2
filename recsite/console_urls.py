"""The merchandiser console, under /console/ in the "console" namespace.

Shell pages (sign-in, second factor, shop chooser, dashboard) come from recsite;
each app adds its shop pages as ``console_urlpatterns``, mounted under
``<shop_slug>/``. Every URL here must be in the permission matrix
(tests/console/test_permissions.py), which fails when one is missing.
"""

from django.urls import include, path

from analytics.urls import console_urlpatterns as analytics_pages
from campaigns.urls import console_urlpatterns as campaigns_pages
from catalog.urls import console_urlpatterns as catalog_pages
from recommender import preview_views
from recommender.console_urls import console_urlpatterns as models_pages
from recsite import planning, views

app_name = "console"

shop_pages = [
    path("", views.dashboard, name="dashboard"),
    path("integration/widget/", views.widget, name="widget"),
    # Joins campaigns and analytics, which only recsite may import together.
    path("experiments/estimate/", planning.experiment_estimate, name="experiment-estimate"),
    *catalog_pages,
    *campaigns_pages,
    *analytics_pages,
    *models_pages,
    # Recommendations shown in the console (recommender/preview_views.py).
    path("preview/", preview_views.preview, name="preview"),
    path("preview/products/", preview_views.preview_products, name="preview-products"),
    path("strategies/preview/", preview_views.strategy_preview, name="strategy-preview"),
    path("promotions/preview/", preview_views.promotion_preview, name="promotion-preview"),
    path("catalog/recommendations/<path:sku>", preview_views.product_recommendations, name="product-recommendations"),
    path("shoppers/recommendations/", preview_views.shopper_recommendations, name="shopper-recommendations"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("account/two-factor/", views.two_factor, name="two-factor"),
    path("<slug:shop_slug>/", include(shop_pages)),
]
