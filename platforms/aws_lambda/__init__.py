"""AWS Lambda: ``platforms.aws_lambda.handler.handler`` serves the reference API through Mangum."""
