# The bot with its embedded Imagine service. Build: docker build -t imagine-bot .
# Run:   docker run --env-file .env -v imagine-data:/app/data imagine-bot
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libvulkan1 libomp5 libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY imagine ./imagine
COPY bot ./bot
COPY cogs ./cogs
# The placeholder and remote engines need no extra; add ",local" for the diffusers engine.
ARG EXTRAS=""
RUN pip install --no-cache-dir -e ".${EXTRAS:+[$EXTRAS]}"
ENV IMAGINE_DATA_DIR=/app/data
VOLUME /app/data
CMD ["python", "-m", "bot"]
