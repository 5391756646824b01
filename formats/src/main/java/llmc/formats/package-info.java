package llmc.formats;
