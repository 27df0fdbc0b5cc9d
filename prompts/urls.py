app_name = "prompts"

urlpatterns: list = []

api_urlpatterns: list = []
