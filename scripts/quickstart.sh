#!/usr/bin/env bash
# Quick start: install, build, run Pier on 127.0.0.1:5000 with the embedded
# defaults (files + SQLite in ./.pier-data), and push an example image to it.
# Stop the registry with: kill "$(cat .pier-data/serve.pid)"
set -euo pipefail
cd "$(dirname "$0")/.."

listen="${PIER_LISTEN:-127.0.0.1:5000}"
data="${PIER_DATA:-.pier-data}"

echo "==> installing npm packages and building"
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build

mkdir -p "$data"
pidfile="$data/serve.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "==> Pier is already running (pid $(cat "$pidfile"))"
else
  echo "==> starting pier serve on $listen (data in $data, log in $data/serve.log)"
  setsid node bin/pier.js serve --listen "$listen" --data "$data" >"$data/serve.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 50); do
    if curl -fsS "http://$listen/v2/" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "pier serve failed to start:" >&2
      tail -5 "$data/serve.log" >&2
      exit 1
    fi
    sleep 0.2
  done
fi

echo "==> building an example image (an OCI layout in .tmp/example)"
rm -rf .tmp/example
node scripts/example-image.mjs .tmp/example

echo "==> pushing it with pier push"
node bin/pier.js push oci:.tmp/example:latest "$listen/example/hello:latest"

echo "==> waiting for the SBOM the registry writes for it (a CycloneDX referrer)"
sbom=""
for _ in $(seq 1 100); do
  sbom=$(curl -fsS "http://$listen/pier/v1/repositories/example/hello/scans/latest" 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{try{const j=JSON.parse(s);if(j.status!=="pending")console.log(j.sbom??"none")}catch{}})') || true
  [ -n "$sbom" ] && break
  sleep 0.2
done
digest=$(curl -fsS -o /dev/null -D - -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$listen/v2/example/hello/manifests/latest" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
echo "    SBOM referrer: ${sbom:-not written yet} (subject $digest)"

echo
echo "Pier is running at http://$listen (pid $(cat "$pidfile"))."
echo "  curl http://$listen/v2/example/hello/tags/list"
echo "  skopeo inspect --tls-verify=false docker://$listen/example/hello:latest"
echo "  curl http://$listen/v2/example/hello/referrers/$digest    # the SBOM (scanning.sbom: false turns it off)"
echo "Stop it with: kill \$(cat $pidfile)"
