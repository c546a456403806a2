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
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("account/two-factor/", views.two_factor, name="two-factor"),
    path("<slug:shop_slug>/", include(shop_pages)),
]
