from django.urls import path

from recommender import apis

api_urlpatterns = [
    path("recommendations", apis.RecommendationsApi.as_view(), name="recommendations"),
]
