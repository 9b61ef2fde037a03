"""AWS Lambda: ``continuum.platforms.aws_lambda.handler.handler`` serves the reference API
through Mangum."""
