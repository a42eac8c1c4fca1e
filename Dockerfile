# The controller's image, which charts/delivery runs: delivery and strategies only (sandbox/ and demo/
# are the repository's test and demo tools, not part of the product).
#   docker build -t REGISTRY/delivery:0.1.0 . && docker push REGISTRY/delivery:0.1.0
#   helm install delivery charts/delivery -n delivery-system --create-namespace \
#     --set image.repository=REGISTRY/delivery
FROM python:3.12-slim
COPY pyproject.toml README.md /src/
COPY delivery /src/delivery
COPY strategies /src/strategies
RUN pip install --no-cache-dir /src && rm -rf /src
# The chart's securityContext runs it as this user, with a read-only root filesystem.
USER 65532:65532
ENTRYPOINT ["delivery"]
