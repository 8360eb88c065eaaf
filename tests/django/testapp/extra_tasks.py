import fastq


@fastq.task(name="extra.echo")
def echo(value):
    return value
