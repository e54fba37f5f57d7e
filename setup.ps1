# Optimus setup for Windows. Optimus's sandbox relies on Linux containers and Linux
# tools (bash, debootstrap, redis-server), so this runs ./setup.sh inside WSL 2, with
# the same arguments (start | stop | status). Docker Desktop's WSL integration must be
# on for the chosen distribution, and Rust installed inside it.
param([ValidateSet("start", "stop", "status")][string]$Command = "start")
$ErrorActionPreference = "Stop"

if (-not (Get-Command wsl.exe -ErrorAction SilentlyContinue)) {
    Write-Error "WSL is not installed. Install it with 'wsl --install', then Docker Desktop with WSL integration."
    exit 1
}
# The repository as WSL sees it (C:\src\optimus -> /mnt/c/src/optimus).
$repo = (& wsl.exe wslpath -a ($PSScriptRoot -replace '\\', '/')).Trim()
if (-not $repo) {
    Write-Error "could not translate $PSScriptRoot to a WSL path"
    exit 1
}
& wsl.exe --cd $repo bash -lc "docker info >/dev/null 2>&1 || { echo 'Docker does not answer inside WSL: enable WSL integration in Docker Desktop' >&2; exit 1; }; ./setup.sh $Command"
exit $LASTEXITCODE
