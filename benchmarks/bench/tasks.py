import fastq


@fastq.task
def noop():
    return None
