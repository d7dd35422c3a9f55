# Installs or upgrades dncs on a Windows/IIS Cybozu Office server.
#
#   powershell -ExecutionPolicy Bypass -File install.ps1 -CybozuDir C:\Inetpub\scripts\cbag
#
# It overwrites the programs and html\, and never touches dncs.ini or what data\ holds (it adds
# data\web.config when missing, so that IIS serves nothing from data\): an upgrade from an
# earlier dncs keeps every user's settings and links.
param([Parameter(Mandatory = $true)][string]$CybozuDir)
$ErrorActionPreference = 'Stop'

$here = Split-Path -Parent (Split-Path -Parent $MyInvocation.MyCommand.Path)
$target = Join-Path $CybozuDir 'dncs'
if (-not (Test-Path (Join-Path $CybozuDir 'ag.exe'))) {
    Write-Warning "$CybozuDir\ag.exe not found; is this the Cybozu Office CGI folder?"
}
New-Item -ItemType Directory -Force -Path "$target\bin", "$target\data" | Out-Null

Copy-Item "$here\bin\dncs.exe" "$target\bin\dncs.exe" -Force
Copy-Item "$here\bin\dncs-sync.exe" "$target\bin\dncs-sync.exe" -Force
if (Test-Path "$target\html") { Remove-Item "$target\html" -Recurse -Force }
Copy-Item "$here\html" "$target\html" -Recurse

if (-not (Test-Path "$target\bin\dncs.ini")) {
    Copy-Item "$here\ini\dncs.ini" "$target\bin\dncs.ini"
    Write-Host "A new dncs.ini was written to $target\bin\dncs.ini: set CYBOZU_URL and the Google client in it."
}

# data\ holds the secrets and the backups: where IIS could serve the folder, it serves nothing.
if (-not (Test-Path "$target\data\web.config")) {
    Copy-Item "$here\install\data-web.config" "$target\data\web.config"
}

# The CGI runs as the application pool identity; it and the scheduled task share data\.
icacls "$target\data" /grant "IIS_IUSRS:(OI)(CI)M" | Out-Null

Write-Host "dncs is installed in $target."
Write-Host "  1. Set the administrator password:  $target\bin\dncs-sync.exe admin-password"
Write-Host "  2. Check the installation:          $target\bin\dncs-sync.exe check"
Write-Host "  3. Schedule the sync every minute (see install\task-scheduler.txt)."
