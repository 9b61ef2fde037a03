"""AWS Lambda: ``continuum.platforms.aws_lambda.handler.handler`` serves the reference API;
``events`` reads Lambda's HTTP events and answers them in their shape."""
