# Sourced by ./llmc, ./run-tests and .ci/run: exports JAVA_HOME pointing at a JDK 25
# (JAVA_HOME if it is one, else the first /usr/lib/jvm/*25*).
llmc_java_version() { "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }
llmc_find_java_home() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && [ "$(llmc_java_version "$JAVA_HOME/bin/java")" = 25 ]; then
    echo "$JAVA_HOME"; return 0
  fi
  local candidate
  for candidate in /usr/lib/jvm/*25*; do
    if [ -x "$candidate/bin/java" ] && [ "$(llmc_java_version "$candidate/bin/java")" = 25 ]; then
      echo "$candidate"; return 0
    fi
  done
  echo "llmc: no JDK 25 found (set JAVA_HOME, or install Temurin 25 under /usr/lib/jvm)" >&2
  return 2
}
JAVA_HOME="$(llmc_find_java_home)" || exit 2
export JAVA_HOME
