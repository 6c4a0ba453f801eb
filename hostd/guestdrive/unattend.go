package guestdrive

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"text/template"

	"github.com/thinhost/thinhost/images/layout/config"
)

// Drivers are the virtio-win ISO's drivers the answer file points setup
// at, by folder: the disk (viostor) and network (NetKVM) that setup needs,
// and the rest of the machine hostd gives a Windows guest (the guest
// agent's serial port, the random number generator, the panic notifier,
// the display), so Windows has them from its first boot.
var Drivers = []string{"viostor", "NetKVM", "vioserial", "viorng", "pvpanic", "viogpudo"}

// driveLetters are where the drivers CD may be in Windows PE and after:
// the CDs get the first free letters from D, in an order setup chooses.
var driveLetters = []string{"D", "E", "F", "G", "H", "I"}

// GuestTools is the installer at the root of the virtio-win ISO: the
// drivers for this Windows, the QEMU guest agent and the SPICE agent.
const GuestTools = "virtio-win-guest-tools.exe"

// driverPaths lists the folders of Drivers for the guest's Windows on
// every letter the drivers CD may have; setup skips those that are not
// there.
func driverPaths(vm *config.VM) []string {
	if vm.Drivers == "" {
		return nil
	}
	osDir := "w11"
	if vm.OS == "windows10" {
		osDir = "w10"
	}
	var out []string
	for _, l := range driveLetters {
		for _, d := range Drivers {
			out = append(out, fmt.Sprintf(`%s:\%s\%s\amd64`, l, d, osDir))
		}
	}
	return out
}

// Unattend is the answer file for vm's install: locale and keyboard, the
// disk wiped and laid out as Windows lays out a UEFI disk (EFI system
// partition, MSR, Windows), the edition, the virtio drivers from the
// drivers CD for setup and for the installed system, the local account
// (with the one-time setup password, for the one automatic logon) without
// the online-account requirement or the privacy questions, and, at the
// first logon, the THINHOST drive's setup script.
//
// Windows takes passwords in answer files in clear or in a reversible
// base64 form; either way the file would reveal it, so the password here
// is hostd's one-time password, which the setup script asks the user to
// replace. Windows itself blanks the passwords in the copy of the answer
// file it keeps (C:\Windows\Panther), and the setup script deletes it.
func Unattend(vm *config.VM, setupPassword string) string {
	w := vm.Windows
	var b bytes.Buffer
	err := unattendTmpl.Execute(&b, map[string]any{
		"VM": vm, "W": w, "Password": setupPassword, "Drivers": driverPaths(vm),
		"Script": SetupScript, "Letters": strings.Join(letters(), " "),
	})
	if err != nil {
		// The template is fixed and its data plain: a failure is a bug.
		panic(fmt.Sprintf("render the answer file: %v", err))
	}
	return b.String()
}

// letters are the drive letters the first logon looks for the THINHOST
// drive on.
func letters() []string {
	var out []string
	for c := 'D'; c <= 'Z'; c++ {
		out = append(out, string(c))
	}
	return out
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

const component = `processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS"`

var unattendTmpl = template.Must(template.New("unattend").Funcs(template.FuncMap{"x": xmlText, "inc": func(i int) int { return i + 1 }}).Parse(strings.ReplaceAll(`<?xml version="1.0" encoding="utf-8"?>
<!-- Written by thinhost's hostd for vm "{{x .VM.Name}}" while it is in install mode. -->
<unattend xmlns="urn:schemas-microsoft-com:unattend" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
  <settings pass="windowsPE">
    <component name="Microsoft-Windows-International-Core-WinPE" COMPONENT>
      <SetupUILanguage>
        <UILanguage>{{x .W.Language}}</UILanguage>
      </SetupUILanguage>
      <InputLocale>{{x .W.Keyboard}}</InputLocale>
      <SystemLocale>{{x .W.Locale}}</SystemLocale>
      <UILanguage>{{x .W.Language}}</UILanguage>
      <UserLocale>{{x .W.Locale}}</UserLocale>
    </component>
{{- if .Drivers}}
    <component name="Microsoft-Windows-PnpCustomizationsWinPE" COMPONENT>
      <!-- virtio-win's drivers, on every letter the drivers CD may have: setup skips the others. -->
      {{- template "drivers" .Drivers}}
    </component>
{{- end}}
    <component name="Microsoft-Windows-Setup" COMPONENT>
      <DiskConfiguration>
        <!-- The guest's own disk, the only one setup can write: the CDs are read-only. -->
        <Disk wcm:action="add">
          <DiskID>0</DiskID>
          <WillWipeDisk>true</WillWipeDisk>
          <CreatePartitions>
            <CreatePartition wcm:action="add">
              <Order>1</Order>
              <Type>EFI</Type>
              <Size>300</Size>
            </CreatePartition>
            <CreatePartition wcm:action="add">
              <Order>2</Order>
              <Type>MSR</Type>
              <Size>16</Size>
            </CreatePartition>
            <CreatePartition wcm:action="add">
              <Order>3</Order>
              <Type>Primary</Type>
              <Extend>true</Extend>
            </CreatePartition>
          </CreatePartitions>
          <ModifyPartitions>
            <ModifyPartition wcm:action="add">
              <Order>1</Order>
              <PartitionID>1</PartitionID>
              <Format>FAT32</Format>
              <Label>System</Label>
            </ModifyPartition>
            <ModifyPartition wcm:action="add">
              <Order>2</Order>
              <PartitionID>2</PartitionID>
            </ModifyPartition>
            <ModifyPartition wcm:action="add">
              <Order>3</Order>
              <PartitionID>3</PartitionID>
              <Format>NTFS</Format>
              <Label>Windows</Label>
              <Letter>C</Letter>
            </ModifyPartition>
          </ModifyPartitions>
        </Disk>
        <WillShowUI>OnError</WillShowUI>
      </DiskConfiguration>
      <ImageInstall>
        <OSImage>
          <InstallFrom>
            <MetaData wcm:action="add">
              <Key>/IMAGE/NAME</Key>
              <Value>{{x .W.Image}}</Value>
            </MetaData>
          </InstallFrom>
          <InstallTo>
            <DiskID>0</DiskID>
            <PartitionID>3</PartitionID>
          </InstallTo>
          <WillShowUI>OnError</WillShowUI>
        </OSImage>
      </ImageInstall>
      <UserData>
        <ProductKey>
          <Key>{{x .W.ProductKey}}</Key>
          <WillShowUI>OnError</WillShowUI>
        </ProductKey>
        <AcceptEula>true</AcceptEula>
      </UserData>
    </component>
  </settings>
{{- if .Drivers}}
  <settings pass="offlineServicing">
    <component name="Microsoft-Windows-PnpCustomizationsNonWinPE" COMPONENT>
      <!-- The same drivers, added to the installed Windows before its first boot. -->
      {{- template "drivers" .Drivers}}
    </component>
  </settings>
{{- end}}
  <settings pass="specialize">
    <component name="Microsoft-Windows-Shell-Setup" COMPONENT>
      <ComputerName>{{x .W.ComputerName}}</ComputerName>
      <TimeZone>{{x .W.TimeZone}}</TimeZone>
    </component>
    <component name="Microsoft-Windows-Deployment" COMPONENT>
      <RunSynchronous>
        <!-- No network or Microsoft account demanded: the account below is local. -->
        <RunSynchronousCommand wcm:action="add">
          <Order>1</Order>
          <Path>reg.exe add HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\OOBE /v BypassNRO /t REG_DWORD /d 1 /f</Path>
        </RunSynchronousCommand>
      </RunSynchronous>
    </component>
  </settings>
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-International-Core" COMPONENT>
      <InputLocale>{{x .W.Keyboard}}</InputLocale>
      <SystemLocale>{{x .W.Locale}}</SystemLocale>
      <UILanguage>{{x .W.Language}}</UILanguage>
      <UserLocale>{{x .W.Locale}}</UserLocale>
    </component>
    <component name="Microsoft-Windows-Shell-Setup" COMPONENT>
      <OOBE>
        <HideEULAPage>true</HideEULAPage>
        <HideOEMRegistrationScreen>true</HideOEMRegistrationScreen>
        <HideOnlineAccountScreens>true</HideOnlineAccountScreens>
        <HideWirelessSetupInOOBE>true</HideWirelessSetupInOOBE>
        <HideLocalAccountScreen>true</HideLocalAccountScreen>
        <ProtectYourPC>3</ProtectYourPC>
      </OOBE>
      <UserAccounts>
        <LocalAccounts>
          <LocalAccount wcm:action="add">
            <Name>{{x .W.Account}}</Name>
            <DisplayName>{{x .W.Account}}</DisplayName>
            <Group>Administrators</Group>
            <!-- hostd's one-time setup password: the first logon asks for your own. -->
            <Password>
              <Value>{{x .Password}}</Value>
              <PlainText>true</PlainText>
            </Password>
          </LocalAccount>
        </LocalAccounts>
      </UserAccounts>
      <AutoLogon>
        <Enabled>true</Enabled>
        <LogonCount>1</LogonCount>
        <Username>{{x .W.Account}}</Username>
        <Password>
          <Value>{{x .Password}}</Value>
          <PlainText>true</PlainText>
        </Password>
      </AutoLogon>
      <FirstLogonCommands>
        <SynchronousCommand wcm:action="add">
          <Order>1</Order>
          <Description>thinhost: finish the install from the THINHOST drive</Description>
          <CommandLine>cmd.exe /c for %d in ({{.Letters}}) do @if exist %d:\{{.Script}} call %d:\{{.Script}}</CommandLine>
          <RequiresUserInput>true</RequiresUserInput>
        </SynchronousCommand>
      </FirstLogonCommands>
    </component>
  </settings>
</unattend>
{{- define "drivers"}}
      <DriverPaths>
{{- range $i, $p := .}}
        <PathAndCredentials wcm:action="add" wcm:keyValue="{{inc $i}}">
          <Path>{{x $p}}</Path>
        </PathAndCredentials>
{{- end}}
      </DriverPaths>
{{- end}}
`, "COMPONENT", component)))

// setupScript is what the first logon runs, as the new administrator:
// virtio-win's guest tools (the drivers, the QEMU guest agent), the
// share user's password stored and the shares mapped, the drive mapper
// put in the Startup folder, the answer file's copies deleted, the marker
// that ends install mode, and last the user's own password.
func setupScript(vm *config.VM, fs *config.FileServer, sharePassword, host string) string {
	account := vm.Windows.Account
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\r\n", a...) }
	w("@echo off")
	w("rem thinhost: finishes the install of vm %q at its first logon (the answer file runs it).", vm.Name)
	w("title thinhost: finishing the install")
	w(`set state=%%ProgramData%%\thinhost`)
	w(`if not exist "%%state%%" mkdir "%%state%%"`)
	w("rem It runs from a copy: hostd takes this CD out once the marker below is there,")
	w("rem and cmd reads a script from its file as it goes.")
	w(`if /i "%%~dp0"=="%%state%%\" goto run`)
	w(`copy /y "%%~f0" "%%state%%\setup.cmd" >nul`)
	if fs != nil {
		w(`copy /y "%%~dp0%s" "%%state%%\%s" >nul`, MapDrives, MapDrives)
	}
	w(`"%%state%%\setup.cmd"`)
	w(":run")
	w(`set log=%%state%%\setup.log`)
	w(`echo thinhost setup of %%COMPUTERNAME%% started %%DATE%% %%TIME%%>>"%%log%%"`)
	w("echo Installing the drivers and the guest agent from the virtio-win CD...")
	w("set tools=")
	w(`for %%%%d in (%s) do if exist %%%%d:\%s set tools=%%%%d:\%s`, strings.Join(driveLetters, " "), GuestTools, GuestTools)
	// No parenthesised block: cmd expands %ERRORLEVEL% in one when it
	// reads it, before the installer has run.
	w(`if not defined tools goto notools`)
	w(`"%%tools%%" /install /quiet /norestart>>"%%log%%" 2>&1`)
	// The redirection first: "exit 0>>file" would redirect handle 0.
	w(`>>"%%log%%" echo guest tools: exit %%ERRORLEVEL%%`)
	w(`goto toolsdone`)
	w(`:notools`)
	w(`echo no virtio-win CD with %s: no guest tools>>"%%log%%"`, GuestTools)
	w(`:toolsdone`)
	if fs != nil {
		w("echo Mapping the host's shares...")
		if alnum(sharePassword, 8) {
			for _, h := range hosts(host) {
				w(`cmdkey /add:%s /user:%s /pass:%s>>"%%log%%"`, h, fs.User, sharePassword)
			}
		}
		w(`call "%%~dp0%s"`, MapDrives)
	}
	w("rem The answer file held the one-time setup password.")
	w(`del /f /q "%%WINDIR%%\Panther\unattend.xml" "%%WINDIR%%\Panther\Unattend\unattend.xml" "%%WINDIR%%\Panther\autounattend.xml" 2>nul`)
	w("rem Done: hostd reads this through the guest agent, ends install mode and takes the CDs out.")
	w(`echo %%DATE%% %%TIME%%>"%s"`, InstalledMarker)
	w("echo.")
	w("echo Windows is installed. Choose your password for %s now: type it twice", account)
	w("echo (nothing is shown as you type). Until you do, %s has a one-time", account)
	w("echo password, which `thinhost ctl vm %s setup-password` shows on the host.", vm.Name)
	w(":again")
	w("net user %s *", account)
	w("if errorlevel 1 goto again")
	w(`echo password chosen>>"%%log%%"`)
	return b.String()
}
