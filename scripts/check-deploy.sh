#!/usr/bin/env bash
# Checks the deployment files with validators from PyPI (pinned in deploy/ci/requirements.txt,
# installed into target/deploy-venv; both carry their schemas and work offline):
# - deploy/ci/github-actions.yml against GitHub's workflow schema, deploy/ci/gitlab-ci.yml
#   against GitLab's CI schema (check-jsonschema's vendored copies);
# - deploy/k8s/*.yaml against the Kubernetes API schema (kubernetes-validate, strict);
# - the Dockerfile: its build stage's RUN commands are run here, and every path its final
#   stage copies must then exist.
#   scripts/check-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/deploy-venv
if [ ! -x "$venv/bin/check-jsonschema" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r deploy/ci/requirements.txt
fi
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows deploy/ci/github-actions.yml
"$venv/bin/check-jsonschema" --builtin-schema vendor.gitlab-ci deploy/ci/gitlab-ci.yml
"$venv/bin/kubernetes-validate" --strict --quiet deploy/k8s/*.yaml
echo "kubernetes manifests: valid (kubernetes-validate --strict)"

# The build stage: every RUN between the first FROM and the second, run as written.
awk '/^FROM /{n++} n==1 && /^RUN /{sub(/^RUN /, ""); print}' Dockerfile | while read -r cmd; do
  echo "Dockerfile build stage: $cmd"
  bash -c "$cmd"
done
# The final stage's COPY sources: from the build stage (paths under /src = the repository) or
# from the build context.
awk '/^FROM /{n++} n==2 && /^COPY /{print}' Dockerfile | while read -r _ first second _rest; do
  if [[ "$first" == --from=* ]]; then src="${second#/src/}"; else src="$first"; fi
  [ -e "$src" ] || { echo "FAIL: the Dockerfile copies $src, which does not exist" >&2; exit 1; }
  echo "Dockerfile final stage copies $src: present"
done
