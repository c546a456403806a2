"""Console pages of the model registry (recommender/views.py), mounted by
recsite/console_urls.py under ``<shop_slug>/`` in the "console" namespace."""

from django.urls import path

from recommender import views

console_urlpatterns = [
    path("models/", views.models, name="models"),
    path("models/train/", views.model_train, name="model-train"),
    path("models/training/", views.model_training, name="model-training"),
    path("models/activate/", views.model_activate, name="model-activate"),
    path("models/rollback/", views.model_rollback, name="model-rollback"),
    path("models/learning/", views.model_learning_settings, name="model-learning"),
]
