from shared.serve import serve
from shared.settings import RoutingSettings

if __name__ == "__main__":
    serve("services.routing.main:create_app", RoutingSettings())  # type: ignore[call-arg]
