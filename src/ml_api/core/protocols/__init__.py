"""The wire protocols over the prediction service: V2 (Open Inference) and the OpenAPI document."""
